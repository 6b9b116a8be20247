// Load generator for benches/client_compare.rs: Apache's Java client doing async
// getData/setData with a fixed number of requests in flight. Written for this project;
// compiled at bench time against the Debian zookeeper.jar.
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class ClientBench {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String op = args[1];
        double secs = Double.parseDouble(args[2]);
        int depth = Integer.parseInt(args[3]);
        double warmup = Double.parseDouble(args[4]);
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(connect, 30000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        connected.await();
        byte[] data = new byte[100];
        try {
            zk.create("/clientbench", data, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        } catch (KeeperException.NodeExistsException e) {
            // from an earlier run
        }
        Semaphore slots = new Semaphore(depth);
        AtomicLong done = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        long start = System.nanoTime();
        long measureFrom = start + (long) (warmup * 1e9);
        long end = measureFrom + (long) (secs * 1e9);
        long doneAtMeasure = -1;
        while (true) {
            long now = System.nanoTime();
            if (doneAtMeasure < 0 && now >= measureFrom) {
                doneAtMeasure = done.get();
            }
            if (now >= end) {
                break;
            }
            slots.acquire();
            if (op.equals("get")) {
                zk.getData("/clientbench", false, (rc, path, ctx, d, stat) -> {
                    if (rc != 0) errors.incrementAndGet();
                    done.incrementAndGet();
                    slots.release();
                }, null);
            } else {
                zk.setData("/clientbench", data, -1, (rc, path, ctx, stat) -> {
                    if (rc != 0) errors.incrementAndGet();
                    done.incrementAndGet();
                    slots.release();
                }, null);
            }
        }
        long measured = done.get() - doneAtMeasure;
        slots.acquire(depth);
        System.out.println("RESULT ops_per_sec=" + (long) (measured / secs) + " errors=" + errors.get());
        zk.close();
    }
}
