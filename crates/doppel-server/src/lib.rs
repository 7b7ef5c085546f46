//! Doppel's HTTP and WebSocket API.
