"""The email itself: templates rendered, text helpers, MIME message, DKIM, a capture server."""
