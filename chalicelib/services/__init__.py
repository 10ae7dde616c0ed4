"""Use cases as verb_noun functions. They call domain rules, storage and the WeChat adapters."""
