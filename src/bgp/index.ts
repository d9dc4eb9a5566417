// Public face of the bgp area: VIP announcements through a gobgpd sidecar (issue 5).
export { GobgpClient, GobgpError, validatePeer, samePeerConfig } from './gobgp-client.js';
export type { GobgpClientOptions, GlobalSpec, PeerSpec, PeerStatus, PeerSessionState, PeerSessionInfo, PeerEventStream } from './gobgp-client.js';
export { canonicalIp, normalizeRoute, routeKey, RouteError } from './paths.js';
export { PeerHistory } from './peer-report.js';
export type { HostRoute } from './paths.js';
export { BgpSpeaker, announcementToRoute, peerSpecFromPlan, bgpSpeakerFromConfig, gracefulRestartSpec } from './speaker.js';
export type { BgpSpeakerOptions, SyncResult, SpeakerEvents } from './speaker.js';
export { withdrawAndWait } from './shutdown.js';
export type { WithdrawAndWaitOptions } from './shutdown.js';
export { bgpMetrics } from './metrics.js';
export { GobgpdProcess } from './gobgpd-process.js';
export type { GobgpdProcessOptions } from './gobgpd-process.js';
