// Runs AWS DynamoDB Local bound to 127.0.0.1 only.
//
// DynamoDB Local has no bind-address option: its Jetty server listens on every interface.
// This launcher builds the server exactly as DynamoDBLocal.jar's own main() does
// (ServerRunner.createServerFromCommandLineArgs), then, before starting it, sets the host of
// each Jetty connector to the loopback address. Jetty is reached by reflection so that this
// file compiles against DynamoDBLocal.jar alone. Telemetry is never configured here, so the
// server sends none (-disableTelemetry is passed as well).
//
// Run in Java's single-file source mode (see local/dynamodb_local.py):
//   java -cp DynamoDBLocal.jar:DynamoDBLocal_lib/* -Djava.library.path=DynamoDBLocal_lib \
//        local/dynamodb/LoopbackDynamoDBLocal.java -inMemory -disableTelemetry -port 8001

import java.lang.reflect.Field;
import java.lang.reflect.Method;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    private static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
        serverField.setAccessible(true);
        Object jetty = serverField.get(proxy);
        Object[] connectors = (Object[]) jetty.getClass().getMethod("getConnectors").invoke(jetty);
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local has no Jetty connector to bind");
        }
        for (Object connector : connectors) {
            Method setHost = connector.getClass().getMethod("setHost", String.class);
            setHost.invoke(connector, HOST);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + HOST + " (" + connectors.length + " connector(s))");
        System.out.flush();
        proxy.join();
    }
}
