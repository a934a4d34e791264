
web
"
Hi {{ x }}H

web"1.0.0j2%
templates/cm.yamlkind: ConfigMap
"
replicas: 1
"
password: s3cr3t
*k---
# Source: web/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  a: '{{}}'
2O
web-hook	ConfigMapweb/templates/hook.yaml"apiVersion: v1
kind: ConfigMap
8Bprod