// Internal to the codec: MQTT 5.0 properties (section 2.2.2) on the wire.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gateway/mqtt/protocol/properties.h"
#include "gateway/mqtt/protocol/wire.h"

namespace wharf::mqtt::wire {

// Where a property list sits; each place allows its own subset of properties (table 2-4).
enum class property_scope : std::uint8_t {
  connect, will, connack, publish, puback, pubrec, pubrel, pubcomp,
  subscribe, suback, unsubscribe, unsuback, disconnect, auth,
};

// Reads the Property Length and the properties after it into `out`. Fails (recorded in
// `in`) with malformed_packet for an identifier unknown or not allowed in `scope`
// (section 2.2.2.2: "not valid for its packet type ... is a Malformed Packet") or a
// truncated value, and with protocol_error for a
// duplicate of a single-occurrence property or a value the spec forbids (0 for Receive
// Maximum, Maximum Packet Size and Subscription Identifier; not 0/1 for the flags).
bool read_properties(reader& in, property_scope scope, properties& out);

// Writes Property Length and the properties of `props` that `scope` allows; the others are
// left out so that what is encoded always decodes.
void write_properties(writer& out, property_scope scope, const properties& props);

// True when `props` has nothing that `scope` allows, i.e. write_properties would write
// only a zero Property Length (the acknowledgement short forms depend on it).
[[nodiscard]] bool properties_empty(property_scope scope, const properties& props);

}  // namespace wharf::mqtt::wire
