"""The node controllers: node_lifecycle (node health, NoSchedule and NoExecute taints per
disruption zone) and taint_eviction (deleting the pods that do not tolerate a node's NoExecute
taints), with their rules in taints (taints and tolerations) and zones (disruption zones and
eviction rates)."""
