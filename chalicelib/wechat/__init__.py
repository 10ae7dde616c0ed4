"""Adapters to WeChat's servers. The only package that imports wechatpy (for Pay v2, later)."""
