"""Delivery: who is due, which papers, the outbox, the send pass, SMTP, bounces."""
