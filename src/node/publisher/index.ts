/**
 * The cluster's publishing side: harvest each
 * node's intro points ({@link IntroCollector}), choose a fair share of at most 20
 * ({@link selectIntroPoints}), publish both merged descriptors to their HSDirs
 * ({@link Publisher}, per-HSDir tracking in {@link UploadTracker}), switch tor's own
 * publishing off in clustered mode ({@link PublishModeSwitch}) and close intro circuits of an
 * unhealthy node ({@link FailClosed}). Intro points travel as `IntroPointWire` (src/core/intro/wire.ts).
 */
export { controlFromReconnecting, controlFromTorControl, EventSubscriptions, type EventSink, type PublisherControl } from './control.js';
export { FailClosed, type FailClosedOptions, type HsOptionGroups } from './fail-closed.js';
export { IntroCollector, introPointsFromServiceDescriptor, type CollectedIntroPoints, type IntroCollectorOptions } from './intro-collector.js';
export { parsePublishSetting, PublishModeSwitch } from './mode-switch.js';
export {
  ControlNetworkSource,
  Publisher,
  type HsdirResult,
  type NetworkSnapshot,
  type NetworkSource,
  type PublishRecord,
  type PublisherOptions,
  type PublisherStatus,
  type VerificationRecord,
  type VerifyOptions,
} from './publisher.js';
export { FetchVerifier, type HsdirVerification, type VerifyResult } from './fetch-verifier.js';
export { DEFAULT_MAX_INTRO_POINTS, selectIntroPoints, selectIntroPointsByNode, type NodeIntroPoints } from '../../core/publish/select.js';
export { UploadTracker, type HsdirOutcome, type UploadRound } from './upload-tracker.js';
