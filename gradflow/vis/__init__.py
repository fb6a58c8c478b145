"""``gradflow.vis``: seeing inside a network.

The engine computes gradients with respect to anything, the input included;
these tools make that first class. Plotting uses matplotlib's Agg canvas
(headless) and is imported only when a plot is drawn.

=======================================  ==============================================
``summary(model, input_size)``           per-layer output shape, parameters, FLOPs
``receptive_field(model, input_shape)``  receptive field size / jump / start per layer
``plot_filters(conv)``                   a conv layer's weights as images
``feature_maps / plot_feature_maps``     a layer's output for an input
``activation_maximization(model, unit)`` the input that excites a unit most
``saliency(model, x, target)``           |d score / d input|
``fgsm(model, x, target, eps)``          fast-gradient-sign adversarial examples
``gram_matrix / style_loss``             Gram-matrix style loss (neural style transfer)
``pgd(model, x, target, eps)``           projected gradient descent in the L-inf ball
``adversarial_patch(model, x, target)``  a square that flips images to a class anywhere
``top_activating_patches(model, x, l)``  the k input patches a unit responds to most
``invert_features(model, x, layer)``     an input whose features match (TV prior)
``deepdream(model, x, layer)``           amplify a layer's activations (octaves, jitter)
``optimizer_path / loss_surface``        optimisers' paths on a 2-parameter loss surface
``distill_dataset(init, forward, x, y)``  synthetic images + lr that train a fresh net
=======================================  ==============================================
"""
from __future__ import annotations

from .activation_max import activation_maximization, plot_activation_maximization  # noqa: F401
from .adversarial import fgsm, plot_fgsm  # noqa: F401
from .attacks import adversarial_patch, paste_patch, patch_success_rate, pgd  # noqa: F401
from .deepdream import deepdream, layer_energy  # noqa: F401
from .distill import distill_dataset  # noqa: F401
from .inversion import invert_features, total_variation  # noqa: F401
from .optimizer_paths import loss_surface, optimizer_path, plot_optimizer_paths  # noqa: F401
from .top_patches import TopPatch, plot_top_patches, top_activating_patches  # noqa: F401
from .filters import feature_maps, plot_feature_maps, plot_filters  # noqa: F401
from .receptive_field import ReceptiveField, RFRow, receptive_field  # noqa: F401
from .saliency import input_gradient, plot_saliency, saliency  # noqa: F401
from .style import content_loss, gram_matrix, style_loss  # noqa: F401
from .summary import Summary, SummaryRow, layer_flops, summary  # noqa: F401

__all__ = ["summary", "Summary", "SummaryRow", "layer_flops", "receptive_field",
           "ReceptiveField", "RFRow", "plot_filters", "feature_maps", "plot_feature_maps",
           "activation_maximization", "plot_activation_maximization", "saliency",
           "plot_saliency", "input_gradient", "fgsm", "plot_fgsm", "gram_matrix",
           "style_loss", "content_loss", "pgd", "adversarial_patch", "paste_patch",
           "patch_success_rate", "top_activating_patches", "plot_top_patches", "TopPatch",
           "invert_features", "total_variation", "deepdream", "layer_energy", "loss_surface",
           "optimizer_path", "plot_optimizer_paths", "distill_dataset"]
