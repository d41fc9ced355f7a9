"""Prompts several test modules share."""

# A 30+ token prompt used by the engine tests on the real model.
PALM_COAST = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his"
)
