from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0004_precision_target'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingrun',
            name='eta_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
