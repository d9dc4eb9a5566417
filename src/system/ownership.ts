// How everything the project creates in a kernel is recognisable as its own, so that
// reconcile and clean-up only ever touch these objects (DESIGN.md: "Own only what you made").

/** Route protocol number on every route the project installs (`ip route ... proto 245`). */
export const ROUTE_PROTOCOL = 245;
export const ROUTE_PROTOCOL_NAME = 'kst';

/** Prefix of every link the project creates, on nodes and inside pods. */
export const LINK_PREFIX = 'kst';

/** The project's nftables table (family inet) on tunnel and serving nodes. */
export const NFT_TABLE = 'kube_service_tunnel';

/** Address label / comment marker where the kernel offers one. */
export const OWNER_TAG = 'kube-service-tunnel';
