"""The design-review room: a cluster's events over MQTT, so that many reviewers watch one
presenter's cluster.

    import workbench as wb
    from workbench.mqtt import Viewer

    presenter = wb.Cluster(mode="raft", name="review", mqtt=True,          # embedded broker
                           mqtt_control={"allow": ["kill", "heal"], "token": "s3cret-word"})
    presenter.mqtt.url                              # 'mqtt://127.0.0.1:PORT': tell the reviewers

    viewer = Viewer("mqtt://127.0.0.1:PORT", "review")    # a broker URL and a name, no cluster
    viewer.state()                                  # (seq, the cluster's state as folded here)
    viewer.request("kill", node="n1", token="s3cret-word")

Topics, payloads and the control rules: :mod:`workbench.mqtt.topics`.
"""

from .bridge import Bridge, cluster_actions
from .broker import EmbeddedBroker
from .topics import ControlPolicy, ControlResult, PayloadError, parse_url
from .viewer import Viewer

__all__ = ["Bridge", "ControlPolicy", "ControlResult", "EmbeddedBroker", "PayloadError",
           "Viewer", "cluster_actions", "parse_url"]
