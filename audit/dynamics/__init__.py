"""GAN dynamics on a mixture of two unit Gaussians (Li, Madry, Peebles, Schmidt 2017).

:mod:`audit.dynamics.model` holds the exact loss, its gradients and the optimal discriminator;
:mod:`audit.dynamics.simulate` the two dynamics (vectorised over runs), the outcome classifier
and the sweep; :mod:`audit.plots.dynamics` the figures. Pure numerics: the stage that reads
its options and writes the figures and the sweep is :mod:`audit.gan_dynamics`
(``python -m audit.gan_dynamics --help``; rule ``gan_dynamics`` in ``rules/dynamics.smk``).
"""
