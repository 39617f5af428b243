"""`minhu serve` and `minhu mqtt-bridge`: the doors people use (HTTP, Open311, MQTT, the
board), over the same engine, on either driver."""
