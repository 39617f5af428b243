"""The analysts' tools: replay with candidate rules (what-if), reports with charts, exports for
notebooks, and the summaries `minhu demo` and `minhu route` print."""
