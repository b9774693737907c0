import * as k8s from '@kubernetes/client-node';
import { apiError } from './kubernetes-source.js';
import { keepWatching } from './keep-watching.js';

/**
 * What the controller asks the API server on behalf of sidecars: whose a
 * service-account token is (TokenReview), and it keeps the injector's
 * MutatingWebhookConfiguration trusting the mesh CA (its caBundle).
 */
export interface PodToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podUid: string;
}

export interface KubernetesIdentity {
  /** The pod a token was issued to, why it is not accepted, or why it could not be asked (the API server did not answer: retry). */
  reviewToken(token: string, audience: string): Promise<{ pod: PodToken } | { refused: string } | { unavailable: string }>;
  /** Sets `caBundle` of every webhook of the named configuration; returns false when it does not exist. */
  setWebhookCaBundle(name: string, caBundle: string): Promise<boolean>;
  /**
   * Calls `onChange` whenever the named MutatingWebhookConfiguration is
   * created or changed (a watch of that one object, started again with a
   * back-off when it stops). Returns the stop function.
   */
  watchWebhookConfiguration(name: string, onChange: () => void, onProblem: (message: string) => void): () => void;
  /** The image of a container of a pod (the controller's own, from POD_NAMESPACE/POD_NAME): the container named `container`, else the pod's only one. */
  podImage(namespace: string, name: string, container: string): Promise<string>;
}

export function kubernetesIdentity(o: { kubeconfig?: string }): KubernetesIdentity {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const auth = kc.makeApiClient(k8s.AuthenticationV1Api);
  const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return {
    watchWebhookConfiguration(name, onChange, onProblem) {
      const fieldSelector = `metadata.name=${name}`;
      // The client's makeInformer takes no field selector; its ListWatch does (RBAC allows a list and watch of one name only with it).
      const informer = new k8s.ListWatch<k8s.V1MutatingWebhookConfiguration>(
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
        new k8s.Watch(kc),
        () => admission.listMutatingWebhookConfiguration({ fieldSelector }),
        false,
        undefined,
        fieldSelector,
      );
      informer.on('add', onChange);
      informer.on('update', onChange);
      return keepWatching(informer, { what: `MutatingWebhookConfiguration ${name}`, onProblem });
    },
    async podImage(namespace, name, container) {
      let pod: k8s.V1Pod;
      try {
        pod = await core.readNamespacedPod({ namespace, name });
      } catch (e) {
        throw new Error(`reading the controller's own pod ${namespace}/${name} failed: ${apiError(e)}`);
      }
      const containers = pod.spec?.containers ?? [];
      const own = containers.find((c) => c.name === container) ?? (containers.length === 1 ? containers[0] : undefined);
      if (!own?.image) throw new Error(`the controller's own pod ${namespace}/${name} has no container named "${container}" (it has ${containers.map((c) => c.name).join(', ') || 'none'})`);
      return own.image;
    },
    async reviewToken(token, audience) {
      let review: k8s.V1TokenReview;
      try {
        review = await auth.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } } });
      } catch (e) {
        return { unavailable: `TokenReview failed: ${apiError(e)}` };
      }
      const s = review.status;
      if (!s?.authenticated) return { refused: `the API server did not accept the token${s?.error ? ` (${s.error})` : ''}: it must be the pod's own, of audience "${audience}", and the pod must still exist` };
      if (!(s.audiences ?? []).includes(audience)) return { refused: `the token is not for audience "${audience}"` };
      const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(s.user?.username ?? '');
      if (!m) return { refused: `the token is not a service account's (user ${JSON.stringify(s.user?.username ?? '')})` };
      const extra = s.user?.extra ?? {};
      const podName = extra['authentication.kubernetes.io/pod-name']?.[0];
      const podUid = extra['authentication.kubernetes.io/pod-uid']?.[0];
      if (!podName || !podUid) return { refused: 'the token is not bound to a pod (a sidecar presents the projected token the kubelet gives its pod, which dies with the pod)' };
      return { pod: { namespace: m[1]!, serviceAccount: m[2]!, podName, podUid } };
    },
    async setWebhookCaBundle(name, caBundle) {
      let current: k8s.V1MutatingWebhookConfiguration;
      try {
        current = await admission.readMutatingWebhookConfiguration({ name });
      } catch (e) {
        if ((e as { code?: number }).code === 404) return false;
        throw new Error(`reading MutatingWebhookConfiguration ${name} failed: ${apiError(e)}`);
      }
      const encoded = Buffer.from(caBundle).toString('base64');
      const webhooks = current.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig.caBundle === encoded)) return true;
      const patch = webhooks.map((_w, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: encoded }));
      try {
        await admission.patchMutatingWebhookConfiguration({ name, body: patch }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
      } catch (e) {
        throw new Error(`setting the caBundle of MutatingWebhookConfiguration ${name} failed: ${apiError(e)}`);
      }
      return true;
    },
  };
}
