"""GAN dynamics on a mixture of two unit Gaussians (Li, Madry, Peebles, Schmidt 2017).

:mod:`audit.dynamics.model` holds the exact loss, its gradients and the optimal discriminator;
:mod:`audit.dynamics.simulate` the two dynamics (vectorised over runs), the outcome classifier
and the sweep; :mod:`audit.dynamics.plots` the figures. The stage runs as
``python -m audit.dynamics --help``.
"""
