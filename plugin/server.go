package plugin

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// shim is what both server shims share: the logger for failed rpcs and where a call's actor comes
// from.
type shim struct {
	log hclog.Logger
	// actorFromMD: on the go-plugin channel, read the actor a launcher named from the request
	// metadata (actorFromMetadata). False on the CLI socket, where the peer-credential interceptor
	// has put the caller's actor in ctx and any metadata the caller sent must be ignored.
	actorFromMD bool
}

func newShim(log hclog.Logger, actorFromMD bool) shim {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return shim{log: log, actorFromMD: actorFromMD}
}

// fail converts the implementation's error for rpc into a status error and logs it at debug level
// (the implementation logs what matters; this line ties an rpc to the code the launcher saw).
func (s shim) fail(rpc string, err error) error {
	st := toStatus(err)
	s.log.Debug("rpc failed", "rpc", rpc, "code", status.Code(st).String(), "error", err)
	return st
}

// enter returns the ctx the implementation is called with: ctx carrying the call's actor.
func (s shim) enter(ctx context.Context, rpc string) (context.Context, error) {
	if !s.actorFromMD {
		return ctx, nil
	}
	ctx, err := actorFromMetadata(ctx)
	if err != nil {
		return ctx, s.fail(rpc, err)
	}
	return ctx, nil
}

// grpcServer is the server shim: it implements the generated Ferry gRPC service by calling a
// Service, converting messages with convert.go and errors with toStatus. It holds no state of its
// own, so it is safe for concurrent use when the Service is.
type grpcServer struct {
	ferryv1.UnimplementedFerryServer
	shim

	impl Service
}

var _ ferryv1.FerryServer = (*grpcServer)(nil)

func newGRPCServer(impl Service, log hclog.Logger, actorFromMD bool) *grpcServer {
	return &grpcServer{impl: impl, shim: newShim(log, actorFromMD)}
}

// registerServices registers the Ferry service backed by impl on s and, if impl also implements
// Admin, the FerryAdmin service; without it the admin rpcs answer Unimplemented ("unknown
// service"), which the client shim reports as ErrUnimplemented.
func registerServices(s grpc.ServiceRegistrar, impl Service, log hclog.Logger, actorFromMD bool) {
	ferryv1.RegisterFerryServer(s, newGRPCServer(impl, log, actorFromMD))
	if admin, ok := impl.(Admin); ok {
		ferryv1.RegisterFerryAdminServer(s, newGRPCAdminServer(admin, log, actorFromMD))
	}
}

// Info answers from the shim itself: the protocol version is Handshake's, the version the
// implementation's (see Versioner).
func (s *grpcServer) Info(context.Context, *ferryv1.InfoRequest) (*ferryv1.InfoResponse, error) {
	return infoToPB(Info{
		Version:         serviceVersion(s.impl),
		ProtocolVersion: int(Handshake.ProtocolVersion),
	}), nil
}

func (s *grpcServer) Submit(ctx context.Context, req *ferryv1.SubmitRequest) (*ferryv1.SubmitResponse, error) {
	ctx, err := s.enter(ctx, "Submit")
	if err != nil {
		return nil, err
	}
	job, err := s.impl.Submit(ctx, submitRequestFromPB(req))
	if err != nil {
		return nil, s.fail("Submit", err)
	}
	return &ferryv1.SubmitResponse{Job: jobToPB(job)}, nil
}

func (s *grpcServer) Status(ctx context.Context, req *ferryv1.StatusRequest) (*ferryv1.StatusResponse, error) {
	ctx, err := s.enter(ctx, "Status")
	if err != nil {
		return nil, err
	}
	jobs, err := s.impl.Status(ctx, stringsOrNil(req.GetIds()))
	if err != nil {
		return nil, s.fail("Status", err)
	}
	return &ferryv1.StatusResponse{Jobs: jobsToPB(jobs)}, nil
}

// Watch relays the implementation's events to the stream until the implementation returns, which
// it does when the launcher cancels (the stream's context ends) or a Send fails.
func (s *grpcServer) Watch(req *ferryv1.WatchRequest, stream ferryv1.Ferry_WatchServer) error {
	ctx, err := s.enter(stream.Context(), "Watch")
	if err != nil {
		return err
	}
	err = s.impl.Watch(ctx, watchRequestFromPB(req), func(ev JobEvent) error {
		return stream.Send(jobEventToPB(ev))
	})
	if err != nil {
		return s.fail("Watch", err)
	}
	return nil
}

func (s *grpcServer) Cancel(ctx context.Context, req *ferryv1.CancelRequest) (*ferryv1.CancelResponse, error) {
	ctx, err := s.enter(ctx, "Cancel")
	if err != nil {
		return nil, err
	}
	rs, err := s.impl.Cancel(ctx, stringsOrNil(req.GetIds()))
	if err != nil {
		return nil, s.fail("Cancel", err)
	}
	return &ferryv1.CancelResponse{Results: cancelResultsToPB(rs)}, nil
}

func (s *grpcServer) StageIn(ctx context.Context, req *ferryv1.StageInRequest) (*ferryv1.StageInResponse, error) {
	ctx, err := s.enter(ctx, "StageIn")
	if err != nil {
		return nil, err
	}
	res, err := s.impl.StageIn(ctx, stageInRequestFromPB(req))
	if err != nil {
		return nil, s.fail("StageIn", err)
	}
	return stageInResponseToPB(res), nil
}

func (s *grpcServer) StageOut(ctx context.Context, req *ferryv1.StageOutRequest) (*ferryv1.StageOutResponse, error) {
	ctx, err := s.enter(ctx, "StageOut")
	if err != nil {
		return nil, err
	}
	res, err := s.impl.StageOut(ctx, stageOutRequestFromPB(req))
	if err != nil {
		return nil, s.fail("StageOut", err)
	}
	return stageOutResponseToPB(res), nil
}

func (s *grpcServer) ListJobs(ctx context.Context, req *ferryv1.ListJobsRequest) (*ferryv1.ListJobsResponse, error) {
	ctx, err := s.enter(ctx, "ListJobs")
	if err != nil {
		return nil, err
	}
	jobs, err := s.impl.ListJobs(ctx, listRequestFromPB(req))
	if err != nil {
		return nil, s.fail("ListJobs", err)
	}
	return &ferryv1.ListJobsResponse{Jobs: jobsToPB(jobs)}, nil
}
