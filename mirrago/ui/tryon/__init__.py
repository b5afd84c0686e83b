"""Try-on page widgets: the image pickers and the recent try-ons."""
