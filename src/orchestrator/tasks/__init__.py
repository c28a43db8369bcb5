"""Tasks as the API asks for them: creation, changes, removal, and putting them in the queue."""
