"""HTTP blueprints, thin: parse -> one service call -> respond. See http.py for the route decorator."""
