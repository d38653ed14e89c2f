package wire

// A fast path for Validate on the frames that carry almost all traffic: a
// send, its answer, and a pushed delivery. It reads the few limited fields
// of these shapes with the generated getters instead of protobuf
// reflection. It only ever accepts: if a shape is not one of these, or any
// field is over its limit, the reflective check runs and reports the error.
// TestFastValidateCoversFields keeps the fields it checks in step with
// parley.proto and fieldLimits.

// fastValid reports whether f is a hot-path frame within every limit.
func fastValid(f *Frame) bool {
	switch b := f.Body.(type) {
	case *Frame_Request:
		s, ok := b.Request.GetKind().(*Request_Send)
		return ok && fastSend(s.Send)
	case *Frame_Response:
		_, ok := b.Response.GetKind().(*Response_Send)
		return ok // SendResponse has no limited field
	case *Frame_Event:
		d, ok := b.Event.GetKind().(*Event_Delivery)
		return ok && fastDelivery(d.Delivery)
	}
	return false
}

func fastSend(s *Send) bool {
	return len(s.GetGroupId()) <= MaxGroupIDSize && len(s.GetMessageId()) <= IDSize && len(s.GetData()) <= MaxDataSize
}

func fastDelivery(d *Delivery) bool {
	if len(d.GetGroupId()) > MaxGroupIDSize || len(d.GetMessageId()) > IDSize || len(d.GetData()) > MaxDataSize {
		return false
	}
	r := d.GetSender()
	return r == nil || (len(r.GetAccountId()) <= AccountIDSize && len(r.GetDeviceId()) <= IDSize)
}

// fastChecked lists the limited fields fastValid checks, with the limit it
// applies, and fastShapes the message types it reads; the test compares
// them with the rules that Validate builds.
var fastChecked = map[string]int{
	"parley.wire.v1.Send.group_id":        MaxGroupIDSize,
	"parley.wire.v1.Send.message_id":      IDSize,
	"parley.wire.v1.Send.data":            MaxDataSize,
	"parley.wire.v1.Delivery.group_id":    MaxGroupIDSize,
	"parley.wire.v1.Delivery.message_id":  IDSize,
	"parley.wire.v1.Delivery.data":        MaxDataSize,
	"parley.wire.v1.DeviceRef.account_id": AccountIDSize,
	"parley.wire.v1.DeviceRef.device_id":  IDSize,
}

// fastShapes are the message types fastValid descends into; fastEntered
// the message fields through which it does so (oneof members it accepts,
// and Delivery.sender).
var (
	fastShapes  = []string{"Frame", "Request", "Response", "Event", "Send", "SendResponse", "Delivery", "DeviceRef"}
	fastEntered = map[string]bool{
		"parley.wire.v1.Frame.request":   true,
		"parley.wire.v1.Frame.response":  true,
		"parley.wire.v1.Frame.event":     true,
		"parley.wire.v1.Request.send":    true,
		"parley.wire.v1.Response.send":   true,
		"parley.wire.v1.Event.delivery":  true,
		"parley.wire.v1.Delivery.sender": true,
	}
)
