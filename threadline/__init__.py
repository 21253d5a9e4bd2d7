"""Threadline: business-transaction tracing for enterprise integrations.

Subpackages: ``threadline.sdk`` (what integrations import), ``threadline.collector`` (the service)
and ``threadline.dashboard`` (the Dash app). Importing this package imports none of them.
"""

__version__ = "0.1.0"
