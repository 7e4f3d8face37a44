package plugin

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkedConn refuses, on the launcher's side and before anything is sent, a request holding a
// string that is not valid UTF-8: protobuf strings must be, and gRPC would otherwise fail the call
// with an Internal marshalling error a launcher cannot tell from a broken agent. The error matches
// ErrInvalidArgument and names the field.
type checkedConn struct{ grpc.ClientConnInterface }

func (c checkedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if m, ok := args.(proto.Message); ok {
		if err := validUTF8(m); err != nil {
			return err
		}
	}
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
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
	if pm, ok := m.(proto.Message); ok {
		if err := validUTF8(pm); err != nil {
			return err
		}
	}
	return s.ClientStream.SendMsg(m)
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
