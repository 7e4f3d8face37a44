package plugin

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkedConn turns gRPC's failure to send a request holding a string that is not valid UTF-8
// into an error that matches ErrInvalidArgument and names the field. Protobuf strings must be
// UTF-8: gRPC refuses such a request while marshalling it, before anything is sent, but with an
// Internal error a launcher cannot tell from a broken agent. The request is only walked after gRPC
// failed with Internal, so valid calls pay nothing (walking 1,000 ids took a tenth of a
// Status(1,000) call).
type checkedConn struct{ grpc.ClientConnInterface }

func (c checkedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	return invalidRequest(err, args)
}

func (c checkedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := c.ClientConnInterface.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return nil, err
	}
	return checkedStream{s}, nil
}

type checkedStream struct{ grpc.ClientStream }

func (s checkedStream) SendMsg(m any) error {
	return invalidRequest(s.ClientStream.SendMsg(m), m)
}

// invalidRequest returns err, or the ErrInvalidArgument naming the field when err is gRPC's
// Internal error and req holds a string that is not valid UTF-8.
func invalidRequest(err error, req any) error {
	if err == nil || status.Code(err) != codes.Internal {
		return err
	}
	if m, ok := req.(proto.Message); ok {
		if verr := validUTF8(m); verr != nil {
			return verr
		}
	}
	return err
}

// validUTF8 checks every string in m (nested messages, lists and map keys and values included).
func validUTF8(m proto.Message) error {
	if field, ok := firstInvalid(m.ProtoReflect(), ""); !ok {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, field)
	}
	return nil
}

func firstInvalid(m protoreflect.Message, prefix string) (string, bool) {
	bad, ok := "", true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				bad, ok = checkValue(fd, l.Get(i), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if ks, isStr := k.Interface().(string); isStr && !utf8.ValidString(ks) {
					bad, ok = name+" key", false
					return false
				}
				bad, ok = checkValue(fd.MapValue(), mv, fmt.Sprintf("%s[%q]", name, k.String()))
				return ok
			})
		default:
			bad, ok = checkValue(fd, v, name)
		}
		return ok
	})
	return bad, ok
}

func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) (string, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return name, false
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return firstInvalid(v.Message(), name+".")
	}
	return "", true
}
