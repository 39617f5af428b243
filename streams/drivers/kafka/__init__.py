"""The Kafka shell: Faust workers, the gateway publisher, operations-centre consumers, topic
administration and the Kafka benchmark. Every decision comes from `handlers/`, as in the
embedded runner; this package only moves bytes between topics, tables and the ledger."""
