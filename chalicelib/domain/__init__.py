"""Pure rules: no I/O, no AWS, no WeChat. Unit-tested without any service."""
