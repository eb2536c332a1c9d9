"""One router per resource: auth, orders, account, markets."""
