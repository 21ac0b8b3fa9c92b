"""Networks (annotators and classifiers, GANs) and their training loops."""
