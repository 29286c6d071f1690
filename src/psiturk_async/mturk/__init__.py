"""Amazon Mechanical Turk: client, HIT and assignment services, and the fee arithmetic they share."""
