package plugin

import (
	"context"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferryhpc/ferry/plugin/proto/ferry/v1"
)

// grpcServer is the server shim: it implements the generated Ferry gRPC service by calling a
// Service, converting messages with convert.go and errors with toStatus. It holds no state of its
// own, so it is safe for concurrent use when the Service is.
type grpcServer struct {
	ferryv1.UnimplementedFerryServer

	impl Service
	log  hclog.Logger
}

var _ ferryv1.FerryServer = (*grpcServer)(nil)

func newGRPCServer(impl Service, log hclog.Logger) *grpcServer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &grpcServer{impl: impl, log: log}
}

// fail converts the implementation's error for rpc into a status error and logs it at debug level
// (the implementation logs what matters; this line ties an rpc to the code the launcher saw).
func (s *grpcServer) fail(rpc string, err error) error {
	st := toStatus(err)
	s.log.Debug("rpc failed", "rpc", rpc, "code", status.Code(st).String(), "error", err)
	return st
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
	job, err := s.impl.Submit(ctx, submitRequestFromPB(req))
	if err != nil {
		return nil, s.fail("Submit", err)
	}
	return &ferryv1.SubmitResponse{Job: jobToPB(job)}, nil
}

func (s *grpcServer) Status(ctx context.Context, req *ferryv1.StatusRequest) (*ferryv1.StatusResponse, error) {
	jobs, err := s.impl.Status(ctx, stringsOrNil(req.GetIds()))
	if err != nil {
		return nil, s.fail("Status", err)
	}
	return &ferryv1.StatusResponse{Jobs: jobsToPB(jobs)}, nil
}

// Watch relays the implementation's events to the stream until the implementation returns, which
// it does when the launcher cancels (the stream's context ends) or a Send fails.
func (s *grpcServer) Watch(req *ferryv1.WatchRequest, stream ferryv1.Ferry_WatchServer) error {
	err := s.impl.Watch(stream.Context(), watchRequestFromPB(req), func(ev JobEvent) error {
		return stream.Send(jobEventToPB(ev))
	})
	if err != nil {
		return s.fail("Watch", err)
	}
	return nil
}

func (s *grpcServer) Cancel(ctx context.Context, req *ferryv1.CancelRequest) (*ferryv1.CancelResponse, error) {
	rs, err := s.impl.Cancel(ctx, stringsOrNil(req.GetIds()))
	if err != nil {
		return nil, s.fail("Cancel", err)
	}
	return &ferryv1.CancelResponse{Results: cancelResultsToPB(rs)}, nil
}

func (s *grpcServer) StageIn(ctx context.Context, req *ferryv1.StageInRequest) (*ferryv1.StageInResponse, error) {
	res, err := s.impl.StageIn(ctx, stageInRequestFromPB(req))
	if err != nil {
		return nil, s.fail("StageIn", err)
	}
	return stageInResponseToPB(res), nil
}

func (s *grpcServer) StageOut(ctx context.Context, req *ferryv1.StageOutRequest) (*ferryv1.StageOutResponse, error) {
	res, err := s.impl.StageOut(ctx, stageOutRequestFromPB(req))
	if err != nil {
		return nil, s.fail("StageOut", err)
	}
	return stageOutResponseToPB(res), nil
}

func (s *grpcServer) ListJobs(ctx context.Context, req *ferryv1.ListJobsRequest) (*ferryv1.ListJobsResponse, error) {
	jobs, err := s.impl.ListJobs(ctx, listRequestFromPB(req))
	if err != nil {
		return nil, s.fail("ListJobs", err)
	}
	return &ferryv1.ListJobsResponse{Jobs: jobsToPB(jobs)}, nil
}
