"""What a person or staff may look up: payment and rights records (Social
Insurance Law art. 4), statements, and the telephone's keypad dialog."""
