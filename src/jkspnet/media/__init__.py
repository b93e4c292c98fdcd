"""Media: photo, film and hint files; atomic writes; the pixel budget of a batch. No network
here."""
