"""Feature spaces of a record (wave segments or time bins), masking backgrounds, the NORM template, attention on a space."""
