#!/bin/sh
# Runs inside a User-mode Linux guest (test/support/uml.selftest.test.ts): proves the guest
# kernel has what the data-plane tests need. Two namespaces joined by veth, a GRE tunnel
# between them, MPLS from one to the other, HMARK flow marks steering policy routing,
# and the host's node.
# Prints one "ok <what>" line per check; stops at the first failure.
set -eu
step() { echo "== $*"; }

step namespaces and veth
ip netns add kst-a
ip netns add kst-b
ip -n kst-a link set lo up
ip -n kst-b link set lo up
ip link add kstva netns kst-a type veth peer name kstvb netns kst-b
ip -n kst-a addr add 192.0.2.1/30 dev kstva
ip -n kst-b addr add 192.0.2.2/30 dev kstvb
ip -n kst-a link set kstva up
ip -n kst-b link set kstvb up
ip netns exec kst-a ping -c 1 -W 5 192.0.2.2
echo "ok veth"

# Loading ip_gre made gre0 in every namespace; ours is kstg0.
step GRE
ip -n kst-a link add kstg0 type gre local 192.0.2.1 remote 192.0.2.2 ttl 64
ip -n kst-b link add kstg0 type gre local 192.0.2.2 remote 192.0.2.1 ttl 64
ip -n kst-a addr add 198.51.100.1/30 dev kstg0
ip -n kst-b addr add 198.51.100.2/30 dev kstg0
ip -n kst-a link set kstg0 up
ip -n kst-b link set kstg0 up
ip netns exec kst-a ping -c 2 -i 0.2 -W 5 198.51.100.2
echo "ok gre ping"

# b pushes label 100 towards a; a pops it and delivers to the address on its lo.
step MPLS
ip netns exec kst-a sysctl -q -w net.mpls.platform_labels=1000
ip netns exec kst-a sysctl -q -w net.mpls.conf.kstva.input=1
ip -n kst-a addr add 203.0.113.10/32 dev lo
ip -n kst-a -f mpls route add 100 dev lo
ip -n kst-a -f mpls route show | grep -q '^100 '
echo "ok mpls route"
ip -n kst-b route add 203.0.113.10/32 encap mpls 100 via inet 192.0.2.1 dev kstvb
ip netns exec kst-b ping -c 2 -i 0.2 -W 5 203.0.113.10
echo "ok mpls ping"

# The UML kernel's nf_tables lacks the IP families, so flow hashing in a guest is xtables
# HMARK. b's main table reaches 203.0.113.20 over the veth; only the HMARK'd fwmark sends it
# through the GRE table instead, which a's GRE receive counter shows.
step HMARK and fwmark policy routing
ip -n kst-a addr add 203.0.113.20/32 dev lo
ip -n kst-b route add 203.0.113.20/32 via 192.0.2.1 dev kstvb
ip netns exec kst-b iptables-legacy -t mangle -A OUTPUT -d 203.0.113.20 -j HMARK \
  --hmark-tuple src,dst --hmark-mod 1 --hmark-offset 0x100 --hmark-rnd 0x1
ip -n kst-b rule add fwmark 0x100 table 100
ip -n kst-b route add 203.0.113.20/32 dev kstg0 table 100
gre_rx() { ip netns exec kst-a cat /sys/class/net/kstg0/statistics/rx_packets; }
before=$(gre_rx)
ip netns exec kst-b ping -c 2 -i 0.2 -W 5 203.0.113.20
after=$(gre_rx)
echo "GRE packets received by a: $before -> $after"
[ $((after - before)) -ge 2 ] || { echo "marked packets did not take the GRE table"; exit 1; }
echo "ok hmark ping"
if ip netns exec kst-a nft add table inet kst_probe 2>/dev/null; then echo "info: nft inet family available"; else echo "info: nft inet family not available in this kernel"; fi

step node
node -e 'process.stdout.write("ok node " + process.version + "\n")'
