"""Server-side Table output: the columns kube-apiserver prints for each kind (table.py)."""
