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
=======================================  ==============================================
"""
from __future__ import annotations

from .activation_max import activation_maximization, plot_activation_maximization  # noqa: F401
from .adversarial import fgsm, plot_fgsm  # noqa: F401
from .filters import feature_maps, plot_feature_maps, plot_filters  # noqa: F401
from .receptive_field import ReceptiveField, RFRow, receptive_field  # noqa: F401
from .saliency import input_gradient, plot_saliency, saliency  # noqa: F401
from .style import content_loss, gram_matrix, style_loss  # noqa: F401
from .summary import Summary, SummaryRow, layer_flops, summary  # noqa: F401

__all__ = ["summary", "Summary", "SummaryRow", "layer_flops", "receptive_field",
           "ReceptiveField", "RFRow", "plot_filters", "feature_maps", "plot_feature_maps",
           "activation_maximization", "plot_activation_maximization", "saliency",
           "plot_saliency", "input_gradient", "fgsm", "plot_fgsm", "gram_matrix",
           "style_loss", "content_loss"]
