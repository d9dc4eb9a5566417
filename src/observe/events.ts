// How areas report something a user should see on a Kubernetes object.
// The kube area implements it with real Events; tests and offline commands collect them.

export interface ObjectRef {
  readonly kind: 'Service' | 'Pod' | 'Node' | 'EndpointSlice';
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
}

export interface EventSink {
  /** `reason` is UpperCamelCase (Kubernetes convention), `message` a sentence for a user. */
  warning(ref: ObjectRef, reason: string, message: string): void;
  normal(ref: ObjectRef, reason: string, message: string): void;
}

export interface RecordedEvent {
  readonly type: 'Warning' | 'Normal';
  readonly ref: ObjectRef;
  readonly reason: string;
  readonly message: string;
}

/** Keeps events in memory (tests, `kst validate`, the agent before the API is reachable). */
export class MemoryEventSink implements EventSink {
  readonly events: RecordedEvent[] = [];
  warning(ref: ObjectRef, reason: string, message: string): void {
    this.events.push({ type: 'Warning', ref, reason, message });
  }
  normal(ref: ObjectRef, reason: string, message: string): void {
    this.events.push({ type: 'Normal', ref, reason, message });
  }
}
