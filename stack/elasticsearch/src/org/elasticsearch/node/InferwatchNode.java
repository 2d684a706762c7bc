package org.elasticsearch.node;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An Elasticsearch node whose plugins come from the class path.
 *
 * <p>Must sit in {@code org.elasticsearch.node}: {@link NodeConstruction} and
 * {@link NodeServiceProvider} are package-private, and they are the only way to hand the node
 * a different {@link PluginsService}.
 */
public final class InferwatchNode extends Node {
    public InferwatchNode(Environment environment, List<Class<? extends Plugin>> plugins) {
        super(NodeConstruction.prepareConstruction(
            environment,
            PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false),
            new ClasspathServiceProvider(environment.settings(), plugins),
            true
        ));
    }

    private static final class ClasspathServiceProvider extends NodeServiceProvider {
        private final Settings settings;
        private final List<Class<? extends Plugin>> plugins;

        ClasspathServiceProvider(Settings settings, List<Class<? extends Plugin>> plugins) {
            this.settings = settings;
            this.plugins = plugins;
        }

        @Override
        PluginsService newPluginService(Environment environment, PluginsLoader loader) {
            return new ClasspathPluginsService(settings, loader, plugins);
        }
    }
}
