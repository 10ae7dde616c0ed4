"""DynamoDB through PynamoDB: one module per table. The only package that imports pynamodb.

Every write states its condition (creates: the key does not exist; status changes: the status
is the expected one); a failed condition surfaces as `ConditionFailed` for services to decide.
"""
