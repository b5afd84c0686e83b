"""The local Mirrago server: the reference API on loopback, for demos, tests and offline work.

`server` starts it (embedded in a thread, or in the foreground for `mirrago sandbox`), `app` holds
the HTTP routes, `engine` the state behind them (tokens, credits, the job queue, rate limits,
fault injection, callbacks) and `render` the try-on composite a finished job produces.
Nothing here imports the client side of the project.
"""
