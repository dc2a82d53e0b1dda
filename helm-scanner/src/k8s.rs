//! Kubernetes objects as data: where the pod template of each workload kind lives, and
//! its containers. Shared by the chart checks and the admission webhook.

use serde_json::Value;

/// The pod spec inside an object of a kind that makes pods (`Pod`, the workload
/// controllers, `CronJob`'s job template); for unknown kinds, any pod template found.
pub fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    let spec = object.get("spec")?;
    match kind {
        "Pod" => Some(spec),
        "CronJob" => spec.pointer("/jobTemplate/spec/template/spec"),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => spec.pointer("/template/spec"),
        _ => spec
            .pointer("/template/spec")
            .or_else(|| spec.pointer("/jobTemplate/spec/template/spec")),
    }
}

/// The container lists of a pod spec, in the order Kubernetes starts them.
pub const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// `(list, index, container)` for every container of a pod spec.
pub fn containers(spec: &Value) -> impl Iterator<Item = (&'static str, usize, &Value)> {
    CONTAINER_LISTS.into_iter().flat_map(move |list| {
        spec.get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(move |(i, c)| (list, i, c))
    })
}
