from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0002_suggestion_shards'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingrun',
            name='eta_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
