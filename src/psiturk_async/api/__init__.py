"""HTTP routers: thin functions that parse, call one service function and answer."""
