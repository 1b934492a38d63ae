// Starts one real OpenSearch node inside this JVM, from the server and module jars on the
// classpath (fetched from Maven Central by the version's pom). Used by `esmigrate dev-server`.
//
// Why a launcher of our own: the OpenSearch distribution cannot be downloaded here, but its jars
// can. Node's protected constructor accepts plugins found on the classpath, which is how the
// modules (HTTP, reindex, painless, ...) are loaded without a modules/ folder. That constructor and
// the modules' class names differ between OpenSearch 2 and 3, so each generation has its own
// ModuleNode (opensearch-2/, opensearch-3/), compiled together with this file.
//
// `--probe` prints facts about the Java runtime instead of starting a node (see _java.py).
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.text.BreakIterator;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;

public final class EmbeddedNode {

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("--probe")) {
            probe();
            return;
        }
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        Path home = Paths.get(require(opts, "home")).toAbsolutePath();
        Path data = Paths.get(opts.getOrDefault("data", home.resolve("data").toString())).toAbsolutePath();
        Path logs = home.resolve("logs");
        // A cluster's nodes share one snapshot location (an fs repository must be reachable from
        // every node); a single node keeps its own under its home.
        Path repo = Paths.get(opts.getOrDefault("repo", home.resolve("snapshots").toString())).toAbsolutePath();
        for (Path p : new Path[] {home, data, logs, repo, home.resolve("config"), home.resolve("plugins")}) {
            Files.createDirectories(p);
        }

        Settings.Builder builder = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", data.toString())
                .put("path.logs", logs.toString())
                .put("path.repo", repo.toString())
                .put("cluster.name", opts.getOrDefault("cluster-name", "esmigrate-dev"))
                .put("node.name", opts.getOrDefault("node-name", "esmigrate-dev-1"));
        if (opts.containsKey("seed-hosts")) {
            // A node of a cluster on loopback: it finds the others at their transport ports; the
            // first start elects a cluster manager among the nodes named (the 2.x/3.x setting).
            builder.putList("discovery.seed_hosts", opts.get("seed-hosts").split(","))
                    .putList("cluster.initial_cluster_manager_nodes",
                            require(opts, "initial-managers").split(","));
        } else {
            builder.put("discovery.type", "single-node");
        }
        Settings settings = builder
                .put("network.host", "127.0.0.1")
                .put("http.port", require(opts, "port"))
                .put("transport.port", opts.getOrDefault("transport-port", "9300-9400"))
                // Development disks are often nearly full; the watermarks would turn indices read-only.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.auto_create_index", opts.getOrDefault("auto-create-index", "true"))
                .build();

        LogConfigurator.configureWithoutConfig(settings);
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, new HashMap<>(), home.resolve("config"), () -> settings.get("node.name"));

        Node node = new ModuleNode(env);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "esmigrate-node-shutdown"));
        node.start();
        System.out.println("esmigrate-dev-node started on http://127.0.0.1:" + settings.get("http.port"));
        System.out.flush();
        stopped.await();
    }

    /**
     * Whether this runtime segments Thai words with a dictionary. OpenSearch's analysis module builds
     * the `thai` analyzer for every index, and Lucene's ThaiTokenizer refuses a runtime without
     * that data (trimmed runtimes leave it out), so index creation fails there.
     */
    private static void probe() {
        BreakIterator words = BreakIterator.getWordInstance(Locale.forLanguageTag("th"));
        words.setText("\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22");
        System.out.println("thai-segmentation=" + words.isBoundary(4));
    }

    private static String require(Map<String, String> opts, String name) {
        String v = opts.get(name);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return v;
    }
}
