"""Deployment packaging: the CloudFormation resources and IAM policy derived from the code."""
