package inferwatch.stack;

import org.elasticsearch.cluster.ClusterName;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.InferwatchNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Boots one Elasticsearch node for inferwatch's local stack (python -m stack).
 *
 * <p>Usage: {@code java -cp <classpath> inferwatch.stack.ElasticsearchLauncher <elasticsearch.yml> [key=value ...]}.
 * The YAML file holds the node settings; {@code key=value} arguments override them. The node
 * runs until the process receives SIGTERM/SIGINT, then closes cleanly.
 */
public final class ElasticsearchLauncher {
    private ElasticsearchLauncher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: ElasticsearchLauncher <elasticsearch.yml> [key=value ...]");
            System.exit(2);
        }
        Settings.Builder builder = Settings.builder().loadFromPath(Path.of(args[0]));
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("not a key=value setting: " + args[i]);
                System.exit(2);
            }
            builder.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        Settings settings = builder.build();
        // logging as in a distribution: log4j2.properties from <path.home>/config
        Environment environment = new Environment(settings, null);
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(settings));
        LogConfigurator.setClusterName(ClusterName.CLUSTER_NAME_SETTING.get(settings).value());
        LogConfigurator.configureESLogging();
        LogConfigurator.configure(environment, true);

        Node node = new InferwatchNode(environment, List.of(Netty4Plugin.class, RootEndpointPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "inferwatch-es-shutdown"));
        node.start();
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        System.out.println("inferwatch-stack: elasticsearch started, http " + http.boundAddress().publishAddress());
        System.out.flush();
        stopped.await();
    }
}
