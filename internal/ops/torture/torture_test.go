package torture

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
)

const (
	childEnv   = "CQRSTORTURE_TEST_CHILD"
	replicaEnv = "CQRSTORTURE_TEST_REPLICA"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(ChildMain(spec))
	}
	if spec := os.Getenv(replicaEnv); spec != "" {
		os.Exit(ReplicaMain(spec))
	}
	os.Exit(m.Run())
}

// testCommand re-executes the test binary as a child.
func testCommand(t *testing.T) func(ChildSpec) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(spec ChildSpec) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+spec.Encode())
		return cmd
	}
}

// TestCampaignPebble is the short crash campaign CI runs: five children
// SIGKILLed at random moments against one Pebble directory, everything
// verified after each kill.
func TestCampaignPebble(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	var log strings.Builder
	sum, err := Run(context.Background(), Config{
		Target:   Target{Backend: Pebble, Dir: t.TempDir()},
		Rounds:   5,
		Writers:  8,
		Seed:     seed,
		Duration: 300 * time.Millisecond,
		Command:  testCommand(t),
		Log:      &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", seed, err, sum)
	}
	t.Log(sum)
	if sum.Kills != 5 {
		t.Errorf("%d kills in 5 rounds: every child must still be running when killed", sum.Kills)
	}
	if sum.AckedAppends+sum.AckedExecutes == 0 || sum.Events == 0 {
		t.Errorf("no acknowledged operation in 5 rounds: the campaign proved nothing: %s", sum)
	}
}

// TestCampaignPostgres runs three kill rounds against PostgreSQL: the
// server named by CQRSGEN_POSTGRES_DSN, or a throwaway one started by
// pgtest (which skips outside CI, and fails in CI, when no server binaries
// are found).
func TestCampaignPostgres(t *testing.T) {
	pgtest.Require(t)
	dsn := os.Getenv(pgtest.EnvDSN)
	if dsn == "" {
		srv, err := pgtest.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		dsn = srv.DSN()
	}
	seed := uint64(time.Now().UnixNano())
	var log strings.Builder
	sum, err := Run(context.Background(), Config{
		Target:   Target{Backend: Postgres, DSN: dsn, Schema: pgtest.Name("torture")},
		Rounds:   3,
		Writers:  8,
		Seed:     seed,
		Duration: 300 * time.Millisecond,
		Command:  testCommand(t),
		Log:      &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", seed, err, sum)
	}
	t.Log(sum)
	if sum.Kills != 3 || sum.Events == 0 {
		t.Errorf("3 rounds: %s", sum)
	}
}

// TestReplicasPostgres is the short replicas campaign CI runs: three
// replica processes run the bank's read model (split in three partitions)
// and transfer saga on one PostgreSQL schema while writers request
// transfers and deposits, and the holder of a lease is SIGKILLed four
// times (twice partition 0's, twice the saga's); once in between, the server crashes and is down for 2 s.
// The long run is cqrstorture -replicas (see docs/reliability.md).
func TestReplicasPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns replica processes")
	}
	pgtest.Require(t)
	srv, err := pgtest.Start() // a server of its own, to restart
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	var log strings.Builder
	sum, err := RunReplicas(context.Background(), ReplicaConfig{
		DSN: srv.DSN(), Schema: pgtest.Name("replicas"), Replicas: 3, Kills: 4, Writers: 2, Partitions: 3,
		TTL: time.Second, Seed: seed, Log: &log,
		Restarts: 1, Restart: func() error {
			srv.Crash()
			time.Sleep(2 * time.Second)
			return srv.Restart()
		},
		Command: func(spec ReplicaSpec) *exec.Cmd {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), replicaEnv+"="+spec.Encode())
			return cmd
		},
	})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", seed, err, sum)
	}
	t.Log(sum)
	if sum.Kills != 4 || sum.Restarts != 1 || sum.Transfers == 0 || sum.Completed == 0 || sum.PartitionHolders < 2 {
		t.Errorf("the campaign proved little: %s", sum)
	}
	for _, d := range sum.Failovers {
		if d > time.Second+time.Second/5+3*time.Second {
			t.Errorf("a failover took %v with a 1 s TTL", d)
		}
	}
}
