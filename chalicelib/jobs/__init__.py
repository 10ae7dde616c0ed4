"""Schedule and SQS blueprints: thin, like api/ (decode the event -> one service call)."""
