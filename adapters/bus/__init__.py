"""Messaging: NATS (core and JetStream) in cluster mode, in-process queues when embedded."""
