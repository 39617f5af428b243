"""The engine's drivers: the embedded runner (one process, SQL ledger) and the Faust workers on
Kafka (`kafka/`). Both run `handlers.engine.Engine`; a driver only moves records in, effects
out, and state to where it is kept."""
