"""netdsl: network specs in the papers' notation, compiled to checked, runnable models.

>>> import netdsl
>>> net = netdsl.loads("input 1x32x32\\nconv5-6 pad 0 +tanh; avgpool; FC-10")
>>> net.output_shape, net.params
(('N', 10), 11926)
"""

from __future__ import annotations

from .errors import NetdslError, NetdslWarning, SourceLoc
from .network import LayerInfo, Network, load, loads

__version__ = "0.1.0"

__all__ = ["LayerInfo", "NetdslError", "NetdslWarning", "Network", "SourceLoc", "__version__",
           "load", "loads"]
